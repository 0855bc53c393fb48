"""The reference math: layers as forward/backward pairs, losses, a network as a list of layers.

Notation, declared once here and used in every docstring and shape comment of the package and
in docs/derivations.md:

    B   batch size            D = 784 inputs (28 × 28 pixels)          K = 10 classes
    U   (B, D) raw pixels 0..255, one sample per row
    X   (B, D) inputs, X = U / 255
    l   a layer's index, l = 1 … L; n_l its width (n₀ = D, n_L = K)
    W_l (n_l, n_{l−1}) weights, b_l (n_l,) bias         (W, b for a one-layer model)
    A_l (B, n_l) a layer's output, A₀ = X;  Z_l = A_{l−1} W_lᵀ + b_l (B, n_l), Z = Z_L the logits
    S   (B, K) softmax(Z), row by row                   Ŷ (B, K) the prediction: Z or S
    Y   (B, K) one-hot targets                          ℒ the batch loss, a mean over B samples
    dZ  ∂ℒ/∂Z, and likewise dA, dW, db: an array's gradient has the array's shape
    Θ_l = [W_l, b_l] (n_l, n_{l−1} + 1): the bias as a last column, so that with X̃ = [X, 1]
        (B, D + 1), Z = X̃ Θᵀ is one product (nn/exact.py); fast/dense.py reads the raw pixels as
        Ũ = [U, 255] (B, D + 1) instead, Z₁ = Ũ Θ₁ᵀ / 255

The functions are pure and work in any float dtype: training uses float32, gradient checks
float64. layers.py holds the layer pairs, losses.py the output and the losses, network.py the
network, architecture.py the model kinds a user names (linear, softmax, mlp) and their weights.
"""

D, K = 784, 10  # inputs (28 × 28 pixels), classes
