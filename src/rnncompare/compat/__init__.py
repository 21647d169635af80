"""Every use of a library's private API (Keras and JAX, keras-tuner, MLflow, deepsig), one module per library,
each refusing at import a version outside the range it was written for. No other module imports a private name.
"""
