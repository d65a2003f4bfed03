from booktune.cli import main

main()
