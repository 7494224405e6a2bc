// SPDX-License-Identifier: MIT
module libchan.bench/goscale

go 1.19
