"""Reading recorded conversations back: from a server, a data directory or a bundle, and
writing bundles. What `caxton replay` and `caxton events export|import` stand on."""

from caxton.shell.archive.bundle import BundleError, import_bundle, write_bundle
from caxton.shell.archive.reader import LogFile
from caxton.shell.archive.sources import LogSource, ServerSource, Source, SourceError

__all__ = [
    "BundleError",
    "LogFile",
    "LogSource",
    "ServerSource",
    "Source",
    "SourceError",
    "import_bundle",
    "write_bundle",
]
