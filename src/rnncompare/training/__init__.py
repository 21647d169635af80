"""Training: the model builder, one fit with its records, the keras-tuner search, the seed runs."""
