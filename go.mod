module github.com/loadprof/loadprof

go 1.26.8
