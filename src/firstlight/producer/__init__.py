"""What a producer runs before delivering: the generator of realistic deliveries
(``synth``) and the manifest builder (``manifest_builder``), behind `firstlight synth`
and `firstlight manifest`. Nothing here touches the archive."""
