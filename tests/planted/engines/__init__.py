"""One module per planted engine; each exports ``Value``. ``base`` is the correct one."""
