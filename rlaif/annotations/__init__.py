"""Human annotation exports -> label records: the canonical CSV, Label Studio, Argilla, Prodigy; the annotator file."""
from rlaif.annotations.annotators import Annotators, read_annotators
from rlaif.annotations.importers import FORMATS, import_annotations

__all__ = ["FORMATS", "Annotators", "import_annotations", "read_annotators"]
