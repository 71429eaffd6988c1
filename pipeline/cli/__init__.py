"""The command line: parsers (main), commands, exit statuses and the console's filters."""
