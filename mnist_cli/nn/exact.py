"""The linear model's optimum in closed form: least squares by the normal equations.

For the linear model ŷ = Wx + b the squared loss is a quadratic in (W, b), so its minimum is
where the gradient vanishes, and that is a linear system. Append a constant 1 to every input,
x̃ = (x, 1), so that the bias is one more weight, and stack the parameters as

    X̃  (N, D+1)   X̃ = [X, 1], rows x̃ᵢ = (pixels / 255, 1)
    Θ  (K, D+1)   Θ = [W, b], so that Ŷ = X̃ Θᵀ = X Wᵀ + b
    Y  (N, K)     one-hot targets

(the X̃ and Θ of nn/'s notation, as fast/dense.py holds every layer).

The ridge objective Σᵢ ‖ŷᵢ − yᵢ‖² + l2 ‖W‖² (sum, not mean; the bias is not penalised) has
gradient 2 X̃ᵀ(X̃Θᵀ − Y) + 2 l2 I'Θᵀ, with I' the identity with a 0 for the bias, so its minimum
solves the normal equations

    (X̃ᵀX̃ + l2 I') Θᵀ = X̃ᵀY          (D+1, D+1) @ (D+1, K) = (D+1, K)

With l2 = 0 this is the minimum of the mean loss `models.squared_loss` that SGD approaches.
On MNIST X̃ᵀX̃ is singular (some corner pixels are 0 in every image), so the system is solved
by least squares, which picks the minimum-norm solution: weight 0 on pixels never seen lit.
With l2 > 0 the matrix is positive definite (vᵀ(X̃ᵀX̃ + l2 I')v = ‖X̃v‖² + l2‖v_W‖² > 0 for
v ≠ 0), the solution unique, and one direct solve finds it.
"""

import numpy as np

from mnist_cli.nn import D, K
from mnist_cli.nn.layers import Params, inputs
from mnist_cli.nn.losses import one_hot

CHUNK = 10_000  # rows of X̃ in memory at once: 10,000 × 785 float64 = 63 MB


def normal_equations(
    images: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(X̃ᵀX̃ (D+1, D+1), X̃ᵀY (D+1, K)) in float64, accumulated CHUNK rows at a time.

    float64 throughout: X̃ᵀX̃ sums 60,000 products per entry, and its small eigenvalues are what
    the solution is most sensitive to.
    """
    gram = np.zeros((D + 1, D + 1))  # (D+1, D+1)
    moment = np.zeros((D + 1, K))  # (D+1, K)
    for start in range(0, len(labels), CHUNK):
        X = inputs(images[start : start + CHUNK], np.float64)  # (n, D)
        X1 = np.hstack([X, np.ones((len(X), 1))])  # (n, D+1), x̃ = (x, 1)
        gram += X1.T @ X1  # (D+1, D+1)
        moment += X1.T @ one_hot(labels[start : start + CHUNK], np.float64)  # (D+1, K)
    return gram, moment


def least_squares(images: np.ndarray, labels: np.ndarray, l2: float = 0.0) -> Params:
    """The (W, b) minimising Σᵢ ‖W xᵢ + b − yᵢ‖² + l2 ‖W‖², for images (N, D) uint8 and
    labels (N,), solved in float64 and returned as float32 Params like SGD's.

    Solves (X̃ᵀX̃ + l2 I') Θᵀ = X̃ᵀY (see the module docstring); the minimum-norm solution
    when the system is singular.
    """
    if not l2 >= 0:
        raise ValueError(f"l2 must be ≥ 0, not {l2}")
    gram, moment = normal_equations(images, labels)
    penalty = np.ones(D + 1)
    penalty[D] = 0.0  # I': the bias is not penalised
    A = gram + l2 * np.diag(penalty)  # (D+1, D+1)
    if l2 > 0:  # positive definite: one direct solve, several times faster than lstsq
        theta_t = np.linalg.solve(A, moment)  # (D+1, K) Θᵀ = [Wᵀ; bᵀ]
    else:  # possibly singular: the minimum-norm solution
        theta_t, *_ = np.linalg.lstsq(A, moment, rcond=None)  # (D+1, K)
    return Params(
        W=theta_t[:D].T.astype(np.float32),  # (K, D)
        b=theta_t[D].astype(np.float32),  # (K,)
    )
