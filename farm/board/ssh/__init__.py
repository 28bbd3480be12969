"""Remote bench hosts over SSH (paramiko).

``connect.py``: connecting with verified host keys. ``bench.py``: SFTP copy of the
image and of ``farm/board/agent.py`` (the one file shipped to a bench host: Python 3
+ pyserial only; it flashes boards there and bridges their serial ports to
stdin/stdout), running the agent with quoted argument lists, and the serial bridge
as a Transport. ``driver.py``: the ``ssh`` board driver of farm.board.registry.
"""
