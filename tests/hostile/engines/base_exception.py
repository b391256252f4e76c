"""A BaseException subclass of its own in sigmoid above 10."""
from ...planted.engines.base import Value as Base


class Halt(BaseException):
    pass


class Value(Base):
    def sigmoid(self):
        if self.data > 10.0:
            raise Halt("sigmoid halts")
        return super().sigmoid()
