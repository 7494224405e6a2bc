// SPDX-License-Identifier: MIT
// The echo benchmark's Go server (bench/echo.py runs it): bench/echo.c's "server" in Go, with
// the net package: a goroutine per connection, reading and writing back until the client
// closes. Listens on 127.0.0.1 (a port the kernel picks), prints "port P", serves until killed.
package main

import (
	"fmt"
	"net"
	"os"
)

func serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		if _, err := c.Write(buf[:n]); err != nil {
			return
		}
	}
}

func main() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "go-echo:", err)
		os.Exit(1)
	}
	fmt.Printf("port %d\n", l.Addr().(*net.TCPAddr).Port)
	for {
		c, err := l.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "go-echo: accept:", err)
			os.Exit(1)
		}
		go serve(c)
	}
}
