"""gamescale: game-theoretic and learning experiments at cluster scale on Ray."""
__version__ = "0.1.0"
