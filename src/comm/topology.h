/*
 * topology.h — where a group's ranks are (topology.c): nodes, the rank map
 * and rail of uniform groups, ranks sharing this machine's kernel, and the
 * measured neighbour link.
 */
#ifndef TPMM_TOPOLOGY_H
#define TPMM_TOPOLOGY_H

#include "group.h"

/* Fill in g's topology from g->comm, g->rank and g->size: node_comm and the
 * node fields, tag_ub, node_index, uniform, grank_of, rail, kernel_ranks,
 * online_cpus, sync_s when the machine is crowded, and net_alpha/net_beta/
 * net_cpu when the group spans nodes. Collective
 * over g->comm. Returns an MPI error code; what it created before a failure
 * stays in g for the caller to free. */
int tpi_topology_learn(tpi_group_t *g);

#endif
