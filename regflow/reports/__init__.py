"""Reading the journal back: funnel and drop-off reports, scripted traffic."""
