"""What people use: the Typer CLI (`followup …`) and the demo; thin layers over the other rooms' functions."""
