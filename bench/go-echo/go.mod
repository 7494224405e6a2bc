// SPDX-License-Identifier: MIT
module libchan.bench/goecho

go 1.19
