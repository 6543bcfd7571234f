// SPDX-License-Identifier: Apache-2.0 (see LICENSE at the repository root)
module ambient.dev/ambient

go 1.19
