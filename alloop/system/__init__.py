"""What is simulated: the starting structures (``structures``), the molecules a frame holds (``molecules``), their
rotors and conformer basins (``conformers``), and the outside molecules that measure forgetting (``outside``)."""
