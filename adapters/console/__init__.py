"""The local console chat: the product on any machine, with no platform account."""
