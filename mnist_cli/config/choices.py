"""The names a user chooses from, and their bounds: one vocabulary for the options, the config
file, the weights file and the code that acts on each name (nn/, optim.py)."""

KINDS = ("linear", "softmax", "mlp", "cnn")  # the models (nn/architecture.py)
ACTIVATIONS = ("relu", "sigmoid", "tanh")  # the mlp's hidden units (nn/layers.py)
LOSSES = ("squared", "cross-entropy")  # nn/losses.py
INITS = ("zeros", "normal")  # the starting weights
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam")  # optim.py
SCHEDULES = ("constant", "cosine")  # the learning rate over a run (optim.learning_rate)
# the config keys of the optimizer and its schedule
OPTIMIZER_KEYS = (
    "optimizer",
    "momentum",
    "beta1",
    "beta2",
    "eps",
    "weight_decay",
    "schedule",
)
MAX_UNITS = 4096  # units in one hidden layer, at most
MAX_HIDDEN_LAYERS = 4
MAX_BLOCKS = 4  # the cnn's convolution blocks, at most
MAX_CHANNELS = 256  # channels of one convolution, at most
IMAGE = (1, 28, 28)  # a picture's channels, rows, columns: D = 784 inputs
SOLVERS = ("sgd", "exact")
# each optimizer setting, and the optimizers that have it
OPTIMIZER_SETTINGS = {
    "momentum": ("momentum", "nesterov"),
    "beta1": ("adam",),
    "beta2": ("adam",),
    "eps": ("adam",),
}
