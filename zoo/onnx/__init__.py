"""zoo.onnx"""
