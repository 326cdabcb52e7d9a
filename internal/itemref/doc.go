// Package itemref parses and validates Galaxy item references in the MXAccess
// grammar (MXACCESS.md §5.5): an optional "Galaxy:" prefix, an object tag
// name, a dotted attribute name (default PV), 1-based array indexes, whole
// arrays "[]", bit fields ".00" to ".31", properties such as ".Quality" or the
// escaped form ".PROPERTY(quality)", and "Obj._Attributes".
//
// Parse checks syntax and length limits only. Whether the object and
// attribute exist is the backend's business: MXAccess accepts a well-formed
// reference to anything and reports resolution failures later.
package itemref
