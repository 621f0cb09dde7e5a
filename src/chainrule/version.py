"""chainrule's version, in one place (the package and the command line read it here)."""

__version__ = "0.1.0"

#: The version of the JSON objects that ``to_dict()`` gives and ``--format json`` prints
#: (docs/json.md): each command's object starts with ``"schema_version"``. Version 2 named
#: the loss, the slopes and the per-point values the same way in every command.
SCHEMA_VERSION = 2
