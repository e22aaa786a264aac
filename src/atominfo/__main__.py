from atominfo.cli import console_main

console_main()  # the same entry as the `atominfo` script (SIGTERM handled like Ctrl-C)
