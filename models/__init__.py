"""Model stage: tokenise and classify text (topic + sentiment) on TensorRT, torch or ONNX Runtime."""
