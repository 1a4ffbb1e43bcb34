"""Networks, the TNTP loader and its bad-input errors (gamescale/envs/routing/network.py, tntp.py)."""

from __future__ import annotations

import pytest

from gamescale.envs.registry import make_env
from gamescale.envs.routing.network import load_network
from gamescale.envs.routing.tntp import load_tntp

NET_HEADER = """<NUMBER OF ZONES> 2
<NUMBER OF NODES> 3
<FIRST THRU NODE> 1
<NUMBER OF LINKS> 2
<END OF METADATA>

~ init term cap length fft b power speed toll type ;
"""
TRIPS = """<NUMBER OF ZONES> 3
<TOTAL OD FLOW> 5.0
<END OF METADATA>

Origin 1
    3 : 5.0;
"""


def write(tmp_path, net_rows: str, trips: str = TRIPS):
    net, tr = tmp_path / "X_net.tntp", tmp_path / "X_trips.tntp"
    net.write_text(NET_HEADER + net_rows)
    tr.write_text(trips)
    return net, tr


GOOD = "\t1\t2\t10\t1\t1\t0.15\t4\t0\t0\t1\t;\n\t2\t3\t10\t1\t1\t0.15\t4\t0\t0\t1\t;\n"


def test_sioux_falls_sizes_and_demand_total():
    net = load_network("sioux_falls")
    assert (net.num_nodes, net.num_links) == (24, 76)
    assert net.demand.total == pytest.approx(360_600.0)
    assert net.out_ptr[-1] == 76 and (net.init_node[net.out_links] == sorted(net.init_node)).all()


def test_built_ins_and_env_registry():
    assert load_network("braess").num_links == 5
    assert load_network("braess_no_middle").num_links == 4
    assert load_network("pigou").num_links == 2
    assert make_env("routing_network", net="braess_tntp").demand.total == 6.0


def test_user_tntp_pair_loads_and_trips_file_is_found_beside_net(tmp_path):
    net, _ = write(tmp_path, GOOD)
    loaded = load_network(str(net))
    assert loaded.num_links == 2 and loaded.demand.total == 5.0


@pytest.mark.parametrize(
    ("rows", "message", "where"),
    [
        ("\t1\t9\t10\t1\t1\t0.15\t4\t0\t0\t1\t;\n\t2\t3\t10\t1\t1\t0.15\t4\t0\t0\t1\t;\n", "unknown node 9", ":8:"),
        (
            "\t1\t2\t10\t1\t1\t0.15\t4\t0\t0\t1\t;\n\t2\t3\t-10\t1\t1\t0.15\t4\t0\t0\t1\t;\n",
            "capacity must be positive",
            ":9:",
        ),
        ("\t1\t2\t10\t1\t1\t0.15\t4\t0\t0\t1\t;\n\t2\t3\tten\t1\t1\t0.15\t4\t0\t0\t1\t;\n", "non-numeric", ":9:"),
        (
            "\t1\t2\t10\t1\t1\t0.15\t4\t0\t0\t1\t\n\t2\t3\t10\t1\t1\t0.15\t4\t0\t0\t1\t;\n",
            "does not end with ';'",
            ":8:",
        ),
        ("\t1\t2\t10\t1\t1\t0.15\t4\t0\t0\t1\t;\n", "metadata says 2 links", ": "),
    ],
)
def test_malformed_net_rows_name_file_and_line(tmp_path, rows, message, where):
    net, tr = write(tmp_path, rows)
    with pytest.raises(ValueError, match=message) as err:
        load_tntp(net, tr)
    assert f"{net}{where}" in str(err.value)


@pytest.mark.parametrize(
    ("trips", "message"),
    [
        (TRIPS.replace("3 : 5.0;", "3 : five;"), "malformed"),
        (TRIPS.replace("3 : 5.0;", "7 : 5.0;"), "unknown node 7"),
        (TRIPS.replace("3 : 5.0;", "3 : -5.0;"), "must be >= 0"),
        (TRIPS.replace("Origin 1\n", ""), "before any 'Origin'"),
    ],
)
def test_malformed_trips_rows_name_file_and_line(tmp_path, trips, message):
    net, tr = write(tmp_path, GOOD, trips)
    with pytest.raises(ValueError, match=message) as err:
        load_tntp(net, tr)
    assert f"{tr}:" in str(err.value)


def test_demand_without_path_is_reported_with_its_line(tmp_path):
    net, tr = write(tmp_path, GOOD, TRIPS.replace("Origin 1", "Origin 3").replace("3 : 5.0;", "1 : 5.0;"))
    with pytest.raises(ValueError, match=r"X_trips.tntp:6: demand from node 3 to node 1 but no path"):
        load_network(str(net), str(tr))


def test_unknown_network_name():
    with pytest.raises(ValueError, match="unknown network"):
        load_network("atlantis")
