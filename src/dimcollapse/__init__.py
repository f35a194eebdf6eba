"""dimcollapse: measure, explain and prevent dimensional collapse in self-supervised learning.

Built from Jing, Vincent, LeCun and Tian, "Understanding Dimensional Collapse in Contrastive
Self-supervised Learning" (ICLR 2022).
"""

__version__ = "0.1.0"
