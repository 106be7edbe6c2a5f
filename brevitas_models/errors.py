"""The exception type of ``brevitas_models``: one line that a command line can print as is."""


class ModelError(Exception):
    """Bad input to the model side (unknown network, bad width, missing or corrupt checkpoint,
    missing data set); the message is one line naming what is at fault."""
