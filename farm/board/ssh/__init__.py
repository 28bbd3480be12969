"""Remote bench hosts over SSH (paramiko).

``agent.py``: the one file shipped to a bench host (Python 3 + pyserial only):
flashes boards there and bridges their serial ports to stdin/stdout.
``ssh.py``: connecting with verified host keys. ``bench.py``: SFTP copy, running
the agent with quoted argument lists, and the serial bridge as a Transport.
``board.py``: the ``ssh`` board driver of farm.board.registry.
"""
