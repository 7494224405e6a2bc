module libchan.bench/goscale

go 1.19
