"""Testing FTP clients against a real ftpd: the pytest plugin (``plugin``), the servers behind
its fixtures (``fixtures``), fault injection (``faults``) and a server in a thread
(``threaded``). docs/LIBRARY.md documents them."""
