# docs/docs.mk - the documentation's make rules: the replayed traces of docs/play/.
include docs/play/play.mk
