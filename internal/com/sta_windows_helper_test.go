//go:build windows && 386

package com

import "github.com/mxgateway/mxgateway/internal/variant"

func readBSTRForTest(b uintptr) (string, error) { return variant.ReadBSTR(RawMemory{}, uint32(b)) }
