"""The rulebook: rule files loaded and checked (`book`), the one expression parser (`expressions`),
rule cases (`cases`) and the catalogue for rule authors (`catalogue`)."""
