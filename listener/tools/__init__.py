"""Tools around the product: the offline demo and its simulated stream, rule replay, import and the JSON Lines format."""
