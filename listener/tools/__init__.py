"""Tools around the product: the offline demo and its simulated stream, rule replay, import and the JSON Lines
format, export, and the team's corrections as labelled examples."""
