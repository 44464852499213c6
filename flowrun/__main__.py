from flowrun.cli import cli

cli(prog_name="flowrun")
