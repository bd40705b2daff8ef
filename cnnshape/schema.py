"""JSON Schema of the spec format, generated from the layer declarations."""

from .layers import LAYER_TYPES
from .spec import DTYPE_BYTES


def json_schema() -> dict:
    """The JSON Schema (draft 2020-12) of a cnnshape spec file."""
    variants = []
    for name, cls in LAYER_TYPES.items():
        variants.append(cls.json_schema())
        if not any(a.required for a in cls.ARGS.values()):
            variants.append({"const": name, "description": f"{name} with default arguments"})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://cnnshape.dev/schema/spec-v1.json",
        "title": "cnnshape spec",
        "description": ("A convolutional network as a list of torch.nn layers; the format is documented "
                        "in docs/spec.md of the cnnshape repository."),
        "type": "object",
        "additionalProperties": False,
        "required": ["input", "layers"],
        "properties": {
            "name": {"type": "string", "description": "Free text."},
            "description": {"type": "string"},
            "input": {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1,
                      "maxItems": 4, "description": "One sample, channels first, no batch: [F], [C, L], "
                                                    "[C, H, W] or [C, D, H, W]."},
            "batch": {"type": "integer", "minimum": 1, "default": 1,
                      "description": "Batch used for memory figures and test passes."},
            "dtype": {"enum": list(DTYPE_BYTES), "default": "float32"},
            "layers": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/layer"}},
        },
        "$defs": {"layer": {"oneOf": variants}},
    }
