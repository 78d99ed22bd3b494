"""Export to deployable formats: ONNX (fp32, INT8), the IMX500 sensor package, LiteRT."""
