"""Pure data: imports nothing else of Rallypoint's."""

from rallypoint.model.cot import ChatInfo, CotEvent, Dest, Detail, EmergencyInfo, Point

__all__ = ["ChatInfo", "CotEvent", "Dest", "Detail", "EmergencyInfo", "Point"]
