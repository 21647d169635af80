"""Running a study: the checks before it, its context, the order of its stages, progress lines, and search
shared between a chief and its workers."""
