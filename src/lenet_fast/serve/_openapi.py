"""The OpenAPI description of `lenet-fast serve` (`lenet_fast.serve`), apart from the
service's code: what each path takes and answers."""

from __future__ import annotations

from .._version import __version__


def openapi_document(max_feature_digits):
    """The OpenAPI 3.1 description of the service (``GET /openapi.json``).

    Parameters
    ----------
    max_feature_digits : int
        The most digits a request may ask C1 feature maps for (``?features=c1``).

    Returns
    -------
    dict
        The JSON-ready document: the paths, their parameters, bodies and answers.
    """
    image_schema = {"type": "array", "items": {"type": "array", "items": {
        "type": "number", "minimum": 0, "maximum": 255}, "minItems": 28, "maxItems": 28},
        "minItems": 28, "maxItems": 28}
    flag = {"type": "string", "enum": ["true", "false"]}
    error = {"description": "bad request: {\"error\": \"<one line>\"}",
             "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "lenet-fast digit recognition", "version": __version__,
                 "description": "LeNet-5 on MNIST: send pictures or arrays of digits, get the "
                                "predicted digits and the ten class probabilities of each."},
        "paths": {
            "/v1/predict": {"post": {
                "summary": "Recognize one or many digits in one batched pass",
                "parameters": [
                    {"name": "normalize", "in": "query", "schema": flag, "description":
                     "normalize as MNIST's digits were made (crop the ink, fit 20x20, centre "
                     "of mass at the centre); default: pictures that are not 28x28 only"},
                    {"name": "images", "in": "query", "schema": flag,
                     "description": "also return the 28x28 digits the model saw"},
                    {"name": "features", "in": "query", "schema": {"type": "string", "enum": ["c1"]},
                     "description": f"also return the C1 feature maps (at most "
                                    f"{max_feature_digits} digits)"}],
                "requestBody": {"required": True, "content": {
                    "image/png": {"schema": {"type": "string", "format": "binary"}},
                    "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                    "multipart/form-data": {"schema": {"type": "object", "additionalProperties": {
                        "type": "string", "format": "binary"}}},
                    "application/json": {"schema": {"type": "object", "required": ["images"],
                                                    "properties": {"images": {
                                                        "type": "array", "items": image_schema}}}},
                    "application/x-npy": {"schema": {"type": "string", "format": "binary",
                                                     "description": "uint8 (N, 28, 28) or (28, 28)"}}}},
                "responses": {
                    "200": {"description": "one prediction per digit, in order", "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Prediction"}}}},
                    "408": error, "413": error, "415": error, "422": error,
                    "429": {**error, "description": "busy with large requests (a place in "
                                                    "their lane is free again soon): "
                                                    "{\"error\": \"<one line>\"}, "
                                                    "Retry-After: 1"}}}},
            "/healthz": {"get": {"summary": "Liveness and the model served",
                                 "responses": {"200": {"description": "ok"}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics (text format)",
                                 "responses": {"200": {"description": "ok"}}}},
            "/": {"get": {"summary": "The draw-a-digit page",
                          "responses": {"200": {"description": "HTML"}}}},
        },
        "components": {"schemas": {
            "Prediction": {"type": "object", "required": ["predictions", "probabilities"],
                           "properties": {
                               "predictions": {"type": "array", "items": {"type": "integer"}},
                               "probabilities": {"type": "array", "items": {
                                   "type": "array", "items": {"type": "number"},
                                   "minItems": 10, "maxItems": 10}},
                               "images": {"type": "array", "items": image_schema},
                               "c1": {"type": "array", "description": "(N, 6, 28, 28)"}}},
            "Error": {"type": "object", "properties": {"error": {"type": "string"}}}}},
    }
