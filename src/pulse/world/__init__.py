"""The synthetic world: the embedded default's people, events, images and corpora."""
