"""The imperative shell: storage, WebAssembly, network, clocks."""
