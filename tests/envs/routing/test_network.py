"""Networks, the TNTP loader and its bad-input errors (gamescale/envs/routing/network.py, tntp.py)."""

from __future__ import annotations

import re

import numpy as np
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


# ----------------------------------------------------------------------------- TNTP variants


def write_files(tmp_path, meta: str, rows: str, trips: str, nodes: str | None = None):
    net, tr = tmp_path / "V_net.tntp", tmp_path / "V_trips.tntp"
    net.write_text(meta + "<END OF METADATA>\n\n~ init term cap length fft b power ;\n" + rows)
    tr.write_text("<NUMBER OF ZONES> 3\n<END OF METADATA>\n" + trips)
    if nodes is not None:
        (tmp_path / "V_node.tntp").write_text(nodes)
    return net, tr


def test_node_ids_that_are_not_one_to_n_tabs_comments_and_seven_fields(tmp_path):
    meta = "<NUMBER OF ZONES>\t2\t\n<NUMBER OF NODES>\t3\t~ three\n<FIRST THRU NODE>\t1\n<NUMBER OF LINKS> 3\n"
    rows = (
        "11000\t11001\t10\t1\t1\t0.15\t4\t;\n11001 11002 10 1 1 0.15 4 ; ~ a comment\n11000\t11002\t10\t1\t5\t0\t4\t;\n"
    )
    trips = "Origin 11000\n  11002 : 4.0;  11001 : 1.5;\n"
    nodes = "node\tX\tY\t;\n11000\t0\t0\t;\n11001\t1\t0\t;\n11002\t2\t0\t;\n"
    net, tr = write_files(tmp_path, meta, rows, trips, nodes)
    loaded = load_network(str(net), str(tr))
    assert loaded.node_ids.tolist() == [11000, 11001, 11002]
    assert loaded.init_node.tolist() == [0, 1, 0] and loaded.term_node.tolist() == [1, 2, 2]
    assert loaded.demand.total == 5.5 and loaded.node_ids[loaded.demand.destination].tolist() == [11002, 11001]
    assert loaded.coordinates.tolist() == [[0, 0], [1, 0], [2, 0]]


def test_power_zero_b_zero_and_predivided_capacity_costs(tmp_path):
    meta = "<NUMBER OF NODES> 2\n<NUMBER OF LINKS> 3\n"
    rows = "1 2 100 1 2 0.5 0 0 0 1 ;\n1 2 100 1 3 0 4 0 0 1 ;\n1 2 1 1 1 1e-8 2 0 0 1 ;\n"
    net, tr = write_files(tmp_path, meta, rows, "Origin 1\n2 : 1;\n")
    loaded = load_tntp(net, tr)
    flow = np.array([50.0, 50.0, 1000.0])
    # power 0: t = fft (1 + b) at any flow; b 0: t = fft; capacity 1 with b pre-divided: fft (1 + b x^2)
    np.testing.assert_allclose(loaded.link_cost(flow), [3.0, 3.0, 1.0 + 1e-8 * 1000.0**2])
    from gamescale.envs.routing.network import link_cost_derivative

    assert np.isfinite(link_cost_derivative(loaded, np.zeros(3))).all()


def test_generalised_cost_adds_toll_and_distance(tmp_path):
    meta = "<NUMBER OF NODES> 2\n<NUMBER OF LINKS> 1\n"
    net, tr = write_files(tmp_path, meta, "1 2 100 4 2 0.15 4 60 3 1 ;\n", "Origin 1\n2 : 1;\n")
    plain = load_tntp(net, tr)
    general = load_tntp(net, tr, toll_weight=0.5, distance_weight=0.25)
    assert general.link_cost(np.zeros(1))[0] == pytest.approx(plain.link_cost(np.zeros(1))[0] + 0.5 * 3 + 0.25 * 4)
    env = make_env("routing_network", net=str(net), toll_weight=0.5)
    assert env.link_cost(np.zeros(1))[0] == pytest.approx(2 + 1.5)


def test_zones_below_first_thru_node_are_not_driven_through(tmp_path):
    meta = "<NUMBER OF NODES> 3\n<FIRST THRU NODE> 3\n<NUMBER OF LINKS> 2\n"
    net, tr = write_files(tmp_path, meta, "1 2 10 1 1 0.15 4 ;\n2 3 10 1 1 0.15 4 ;\n", "Origin 1\n3 : 1;\n")
    with pytest.raises(ValueError, match=r"V_trips.tntp:4: demand from node 1 to node 3 but no path"):
        load_network(str(net), str(tr))


def test_sioux_falls_has_node_coordinates():
    net = load_network("sioux_falls")
    assert net.coordinates.shape == (24, 2) and np.isfinite(net.coordinates).all()


@pytest.mark.parametrize(
    ("rows", "trips", "message"),
    [
        (
            "\t1\t9\t10\t1\t1\t0.15\t4\t;\n\t2\t3\t10\t1\t1\t0.15\t4\t;\n",
            TRIPS,
            r"X_net.tntp:8: link refers to unknown node 9",
        ),
        (
            "\t1\t2\t-10\t1\t1\t0.15\t4\t;\n\t2\t3\t10\t1\t1\t0.15\t4\t;\n",
            TRIPS,
            r"X_net.tntp:8: capacity must be positive",
        ),
        (GOOD, TRIPS.replace("Origin 1", "Origin 3").replace("3 : 5.0;", "1 : 5.0;"), r"X_trips.tntp:6: .*no path"),
        (GOOD.split(";")[0], TRIPS, r"X_net.tntp:8: link row does not end with ';'"),  # truncated mid-row
        (GOOD, TRIPS[:-4], r"X_trips.tntp:6: malformed demand row"),  # truncated mid-entry
    ],
)
def test_bad_input_is_one_line_naming_file_and_line_with_exit_2(tmp_path, rows, trips, message):
    from typer.testing import CliRunner

    from gamescale.framework.cli import app

    net, tr = write(tmp_path, rows, trips)
    args = ["run", "routing-static-ue", "--set", f"env.net={net}", "--set", f"env.trips={tr}"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "run"), "--no-progress"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and re.search(message, lines[0]), result.output
