"""Helpers for the IIC video self-supervised learning tutorial.

IIC: "Self-supervised Video Representation Learning Using Inter-intra Contrastive
Framework" (Tao, Wang, Yamasaki, ACM MM 2020). The package holds everything the
notebooks call: views (residual frames), intra-negatives, 3D CNN backbones, the
memory-bank contrastive loss, retrieval, data loading and training loops.
"""

__version__ = "0.1.0"
