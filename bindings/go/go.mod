module ambient.dev/ambient

go 1.19
