"""Export to deployable formats: ONNX (fp32, INT8), the IMX500 sensor package, LiteRT.

Each format has its own module, imported on use: :mod:`.onnx_fp32` (``export_onnx``),
:mod:`.onnx_int8` (``export_onnx_int8``), :mod:`.imx500` (``export_imx500``; MCT + Sony's
converter, with the compatibility shims in :mod:`.mct_compat`), :mod:`.tflite`
(``export_tflite``, litert-torch) and :mod:`.calibration` (the COCO calibration windows)."""
