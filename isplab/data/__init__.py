"""Datasets, patch sampling with CFA-aware augmentation, and phone/DSLR alignment."""
