from flowrun.cli.main import cli

cli(prog_name="flowrun")
