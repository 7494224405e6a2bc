// SPDX-License-Identifier: MIT
module libchan.bench/go

go 1.19
